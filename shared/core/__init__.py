"""The service's vocabulary, each concept defined once: time (:mod:`.clock`), what
Azure answered when a call failed (:mod:`.errors`) and how long to wait before the
next attempt (:mod:`.retry`). Nothing here does I/O."""
