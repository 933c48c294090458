# secure suite driver (bench/secure/run.sh): secure region over a secure
# connection vs plain region over a plain connection, same in-process node.
add_executable(secure_bench ${CMAKE_CURRENT_LIST_DIR}/secure_bench.cc)
target_compile_options(secure_bench PRIVATE ${COSMOS_WARNINGS})
target_link_libraries(secure_bench PRIVATE cosmos::client cosmos::server cosmos::sec cosmos::pmem
                                           cosmos_bench_report)
