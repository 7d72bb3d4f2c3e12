// Filled in by the Kafka work: consumer throughput and CPU per million messages vs kcat.
print("ConsumerBenchmark: not built yet")
