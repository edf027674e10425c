# cmake -DSQLPOST=BIN -DMAN=OUT.1.gz -DCOMPLETION=OUT -P generate-docs.cmake
# Runs the built program to write its man page (gzip -9n: no name or time, so
# the output is reproducible) and its bash completion script.
foreach(var SQLPOST MAN COMPLETION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "generate-docs.cmake: -D${var}= is required")
  endif()
endforeach()

string(REGEX REPLACE "\\.gz$" "" man_plain "${MAN}")
execute_process(COMMAND "${SQLPOST}" --help-man OUTPUT_FILE "${man_plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sqlpost --help-man failed (${rc})")
endif()
execute_process(COMMAND gzip -9nf "${man_plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip of ${man_plain} failed (${rc})")
endif()
execute_process(COMMAND "${SQLPOST}" --help-completion OUTPUT_FILE "${COMPLETION}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "sqlpost --help-completion failed (${rc})")
endif()
