"""Rules the life cycles apply, without I/O: deployment names (:mod:`.naming`), Azure's
idle rule (:mod:`.idle`), hosting hours and cost (:mod:`.hosting`), and a job's
results and gate (:mod:`.gate`)."""
