"""Stand-in for the get-pip.py bootstrap that ansible-test downloads from a
host these machines cannot reach: bootstrap pip with the standard library's
ensurepip, then let that pip install the requested version from PyPI."""
import ensurepip
import subprocess
import sys

ARGS = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
subprocess.check_call([sys.executable, "-m", "pip", "install"] + ARGS)
