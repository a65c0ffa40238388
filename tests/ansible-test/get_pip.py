"""Stands in for ansible-test's pip bootstrap script (get-pip-VERSION.py from
ci-files.testing.ansible.com, which this machine kind cannot reach):
scripts/ansible-test copies it into ansible-test's cache. It installs the
interpreter's bundled pip (ensurepip), then the packages ansible-test asks
for (pip==VERSION, setuptools, wheel) from PyPI with that pip."""

import ensurepip
import os
import subprocess
import sys

# get-pip's own options, which pip install does not take.
OWN = {"--no-setuptools", "--no-wheel"}

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in OWN]
# The system's CA bundle, as /etc/pip.conf names it on these machines (a
# TLS-inspecting egress proxy signs PyPI's certificate).
bundle = "/etc/ssl/certs/ca-certificates.crt"
if os.path.exists(bundle):
    args = ["--cert", bundle] + args
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
