"""Edge Manager logic without an engine: admission arithmetic, status parsing, pull accounting."""

import docker.errors
import pytest

from mec.core import config
from mec.edge.manager import (CapacityError, EdgeManager, ImageNotCachedError, admission_error,
                              container_name, instance_from_attrs, parse_pull_stream,
                              reservations, split_ref)


def attrs(instance, state="running", cpus=None, mem_mb=None, port=8080, role="primary"):
    return {
        "Id": f"id-{instance}",
        "Name": f"/{container_name(instance)}",
        "State": {"Status": state},
        "Config": {"Image": "r:5000/mec/busybox:latest",
                   "Env": [f"MEC_INSTANCE={instance}", f"MEC_PORT={port}", "PATH=/bin"],
                   "Labels": {"mec.instance": instance, "mec.service": "svc", "mec.role": role}},
        "HostConfig": {"NanoCpus": int(cpus * 1e9) if cpus else 0,
                       "Memory": mem_mb * 1024 * 1024 if mem_mb else 0},
    }


class FakeContainer:
    def __init__(self, a):
        self.attrs = a
        self.removed = False

    def reload(self):
        pass

    def start(self):
        self.attrs["State"]["Status"] = "running"

    def remove(self, force=False):
        self.removed = True


class FakeImage:
    def __init__(self, tags, size=100):
        self.tags = tags
        self.attrs = {"Size": size}


class FakeContainers:
    def __init__(self, items):
        self.items = items
        self.created = []

    def list(self, all=False, filters=None):
        return [FakeContainer(a) for a in self.items]

    def get(self, name):
        for a in self.items:
            if a["Name"].lstrip("/") == name:
                return FakeContainer(a)
        raise docker.errors.NotFound(name)

    def create(self, image, **kw):
        self.created.append((image, kw))
        a = attrs(kw["labels"]["mec.instance"], state="created",
                  cpus=kw.get("nano_cpus", 0) / 1e9 or None,
                  mem_mb=int(kw["mem_limit"][:-1]) if "mem_limit" in kw else None)
        a["Config"]["Labels"] = kw["labels"]
        self.items.append(a)
        return FakeContainer(a)


class FakeImages:
    def __init__(self, tags):
        self.tags = tags

    def get(self, ref):
        if ref not in self.tags:
            raise docker.errors.ImageNotFound(ref)
        return FakeImage([ref])

    def list(self):
        return [FakeImage([t]) for t in self.tags] + [FakeImage([])]


class FakeClient:
    def __init__(self, containers=(), images=(), up=True):
        self.containers = FakeContainers(list(containers))
        self.images = FakeImages(list(images))
        self.up = up

    def ping(self):
        if not self.up:
            raise ConnectionError("engine socket gone")
        return True


REF = "r:5000/mec/busybox:latest"


def test_admission_arithmetic():
    assert admission_error(2.0, 1024, 1.5, 512, 0.5, 512) is None  # exactly fills
    assert "1 CPUs requested, 0.5 of 2 free" in admission_error(2.0, None, 1.5, 0, 1.0, None)
    assert "600 MB memory requested, 512 of 1024 MB free" in admission_error(
        None, 1024, 0, 512, None, 600)
    assert admission_error(None, None, 100, 1e6, 50, 10**6) is None  # unlimited cloudlet
    assert admission_error(1.0, 128, 1.0, 128, None, None) is None  # request without limits
    both = admission_error(1.0, 128, 0.9, 100, 0.5, 64)
    assert "CPUs" in both and "memory" in both
    # floating point: three 0.1 CPU requests on a 0.3 CPU cloudlet all fit
    assert admission_error(0.3, None, 0.1 + 0.1, 0, 0.1, None) is None


def test_reservations_count_only_active_containers():
    insts = [instance_from_attrs(attrs("a", cpus=1.0, mem_mb=256), "c1", "10.0.0.1"),
             instance_from_attrs(attrs("b", state="exited", cpus=4.0, mem_mb=4096), "c1", "x"),
             instance_from_attrs(attrs("c", state="created", cpus=0.5), "c1", "x"),
             instance_from_attrs(attrs("d"), "c1", "x")]
    assert reservations(insts) == (1.5, 256.0)


def test_instance_from_attrs_parses_limits_labels_and_port():
    inst = instance_from_attrs(attrs("svc-1", cpus=0.25, mem_mb=64, port=9000, role="secondary"),
                               "c1", "10.0.1.1")
    assert inst.name == "svc-1" and inst.container == container_name("svc-1")
    assert inst.cpus == 0.25 and inst.memory_mb == 64 and inst.port == 9000
    assert inst.role == "secondary" and inst.service == "svc"
    assert inst.url == "http://10.0.1.1:9000/"
    foreign = attrs("x")
    del foreign["Config"]["Labels"]["mec.instance"]
    assert instance_from_attrs(foreign, "c1", "ip") is None


def test_status_free_resources_and_images():
    client = FakeClient([attrs("a", cpus=1.0, mem_mb=300), attrs("b", state="exited", cpus=1.0)],
                        images=[REF, "other:1"])
    em = EdgeManager("c1", client, "10.0.1.1", cpus=2.0, memory_mb=1000)
    st = em.status()
    assert st.up and st.cpus_free == 1.0 and st.memory_free_mb == 700
    assert [i.name for i in st.running] == ["a"] and len(st.instances) == 2
    assert st.images == ["other:1", REF]
    unlimited = EdgeManager("c2", client, "ip").status()
    assert unlimited.cpus_free is None and unlimited.memory_free_mb is None


def test_status_of_a_down_engine():
    st = EdgeManager("c1", FakeClient(up=False), "ip", cpus=1).status()
    assert not st.up and "socket gone" in st.error and st.instances == []


def test_deploy_refuses_when_full_and_sets_limits_labels_env():
    client = FakeClient([attrs("a", cpus=1.5, mem_mb=512)], images=[REF])
    em = EdgeManager("c1", client, "10.0.1.1", cpus=2.0, memory_mb=1024)
    with pytest.raises(CapacityError, match=r"c1 cannot host.*1 CPUs requested, 0.5 of 2 free"):
        em.deploy("b", REF, cpus=1.0, memory_mb=64)
    assert client.containers.created == []
    inst = em.deploy("b", REF, cpus=0.5, memory_mb=512, env={"X": "1"}, port=9000,
                     volumes={"/tmp/d": "/srv/data"}, service="svc", role="secondary")
    image, kw = client.containers.created[0]
    assert image == REF and kw["network_mode"] == "host" and kw["name"] == container_name("b")
    assert kw["nano_cpus"] == 500_000_000 and kw["mem_limit"] == "512m"
    assert kw["environment"] == {"MEC_INSTANCE": "b", "MEC_PORT": "9000", "X": "1"}
    assert kw["labels"] == {"mec.service": "svc", "mec.instance": "b", "mec.role": "secondary"}
    assert kw["volumes"] == {"/tmp/d": {"bind": "/srv/data", "mode": "rw"}}
    assert inst.state == "running" and inst.launch_s is not None
    with pytest.raises(CapacityError):  # now exactly full
        em.deploy("c", REF, cpus=0.01)


def test_deploy_needs_a_cached_image_and_a_valid_name():
    em = EdgeManager("c1", FakeClient(), "ip")
    with pytest.raises(ImageNotCachedError, match="not cached on cloudlet c1"):
        em.deploy("a", REF)
    with pytest.raises(ValueError, match="instance name"):
        em.deploy("a/b", REF)


def test_pull_stream_accounting():
    events = [
        {"status": "Pulling from mec/httpd", "id": "latest"},
        {"status": "Pulling fs layer", "id": "l1"}, {"status": "Pulling fs layer", "id": "l2"},
        {"status": "Already exists", "id": "l0"},
        {"status": "Downloading", "progressDetail": {"current": 10, "total": 1000}, "id": "l1"},
        {"status": "Downloading", "progressDetail": {"current": 900, "total": 1000}, "id": "l1"},
        {"status": "Downloading", "progressDetail": {"current": 5, "total": 50}, "id": "l2"},
        {"status": "Extracting", "progressDetail": {"current": 4000, "total": 9999}, "id": "l1"},
        {"status": "Pull complete", "id": "l1"}, {"status": "Pull complete", "id": "l2"},
        {"status": "Digest: sha256:abc"},
    ]
    assert parse_pull_stream(events) == (1050, 2, 1)
    assert parse_pull_stream([{"status": "Status: Image is up to date"}]) == (0, 0, 0)
    with pytest.raises(RuntimeError, match="manifest unknown"):
        parse_pull_stream([{"error": "manifest unknown"}])


def test_split_ref():
    assert split_ref("10.0.3.1:5000/mec/httpd:latest") == ("10.0.3.1:5000/mec/httpd", "latest")
    assert split_ref("10.0.3.1:5000/mec/httpd") == ("10.0.3.1:5000/mec/httpd", "latest")
    assert split_ref("busybox:1.36") == ("busybox", "1.36")
    assert container_name("x").startswith(config.PREFIX)


class FakeApi:
    def __init__(self, images, events):
        self.images, self.events = images, events

    def pull(self, repo, tag, stream, decode):
        for ev in self.events:
            yield ev
        self.images.tags.append(f"{repo}:{tag}")


def test_pull_reports_declared_bytes_and_no_wire_count_without_a_namespace():
    client = FakeClient()
    client.api = FakeApi(client.images, [
        {"status": "Downloading", "progressDetail": {"current": 1, "total": 700}, "id": "l1"},
        {"status": "Download complete", "id": "l1"}, {"status": "Pull complete", "id": "l1"}])
    res = EdgeManager("c1", client, "ip").pull(REF)
    assert res.declared_bytes == res.bytes == 700 and res.layers_downloaded == 1
    assert res.wire_bytes is None  # nothing counted is missing, never a size in its place
    assert res.download_s is not None and 0 <= res.download_s <= res.seconds
