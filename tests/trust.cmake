sqlpost_test(trust_test SOURCES trust_test.cpp cluster.cpp LIBS sqlpost_replication)
sqlpost_test(security_cli_test SOURCES security_cli_test.cpp LIBS sqlpost_agent)
