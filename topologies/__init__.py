"""The emulated MEC infrastructure: topology model and files, links, cloudlets, mobility."""
