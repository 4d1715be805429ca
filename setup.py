"""Package discovery for the one `splitsim` namespace (the metadata is in pyproject.toml).

The repository keeps its parts at the top level (netsim/, learning/, optimizer/, scenarios/,
analysis/, as the design asks); installed, each is a subpackage of `splitsim` (`splitsim.netsim`,
...), found with every package below it, so a new subpackage needs no edit here. The shipped
scenarios and their data travel as package data of `splitsim.scenarios`.
"""

from setuptools import find_packages, setup

PARTS = ("netsim", "learning", "optimizer", "scenarios", "analysis")

package_dir = {"splitsim": "splitsim"}
packages = ["splitsim", *(f"splitsim.{p}" for p in find_packages("splitsim"))]
for part in PARTS:
    package_dir[f"splitsim.{part}"] = part
    packages += [f"splitsim.{part}", *(f"splitsim.{part}.{p}" for p in find_packages(part))]

setup(packages=packages, package_dir=package_dir)
