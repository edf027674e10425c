sqlpost_test(schema_test SOURCES schema_test.cpp LIBS sqlpost_schema)
sqlpost_test(capture_test SOURCES capture_test.cpp LIBS sqlpost_replication)
sqlpost_test(epoch_test SOURCES epoch_test.cpp LIBS sqlpost_replication)
sqlpost_test(cli_test SOURCES cli_test.cpp LIBS sqlpost_schema)
