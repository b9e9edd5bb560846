"""The Network Manager: an OpenFlow 1.3 SDN application (Ryu or os-ken) with a REST API."""
