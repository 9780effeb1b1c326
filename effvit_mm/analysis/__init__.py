"""Timing and counting: multiply-adds (:mod:`.mac_count`), the throughput / latency benchmark of models
and runtimes (:mod:`.benchmark`), whole detectors and segmentors timed end to end (:mod:`.latency`)."""
