"""The Edge Manager (paper Sec. IV): what happens on one cloudlet.

* `manager`: a cloudlet's Docker engine through the Docker SDK (deploy, pull, wait
  until an instance answers, remove, status);
* `images`: the service images, built from distribution packages and published into
  the emulated cloud registry's storage (`files/mec-service` runs in every image);
* `transfer`: an image archive sent from one edge to another over the emulated links.
"""
