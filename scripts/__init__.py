"""Stand-alone scripts over the library (benchmarks, the load test); run them as files."""
