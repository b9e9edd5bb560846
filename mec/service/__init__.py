"""The Service Manager (paper Sec. IV): one per service, watching its replicas.

* `manager`: health checks of every replica over the emulated network;
* `datasync`: the data of a storage-dependent service pushed from the primary to the
  other replicas every period.
"""
