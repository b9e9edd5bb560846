"""Package definition of the MEC replication/migration testbed."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "mec" / "__init__.py").read_text()).group(1)
REQUIREMENTS = [
    line.strip()
    for line in (HERE / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="mec-testbed",
    version=VERSION,
    description="Network emulation testbed for MEC service replication and migration "
    "(Farris et al., ICC 2017)",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mec", "mec.*", "topologies", "controller", "scenarios"]),
    package_data={"topologies": ["*.yaml"], "mec.edge": ["files/*"]},
    install_requires=REQUIREMENTS,
    extras_require={"ryu": ["ryu==4.34"]},
    entry_points={"console_scripts": ["mec = mec.cli.main:main"]},
)
