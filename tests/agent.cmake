# Agent modules on their own: logging (agent/log) and the --every loop (agent/schedule).
sqlpost_test(agent_log_test SOURCES agent_log_test.cpp LIBS sqlpost_agent)
sqlpost_test(agent_schedule_test SOURCES agent_schedule_test.cpp LIBS sqlpost_agent)
