"""Stand-in for the get-pip bootstrap script that ansible-test downloads before it makes its virtual
environments. That download comes from a host this machine cannot reach; this script does the same job
with what is at hand: the interpreter's bundled pip (ensurepip), then pip installs the pinned packages
ansible-test asks for (pip, setuptools, wheel) from the package index.
scripts/sanity.sh copies it to where ansible-test looks for its cached copy.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
# get-pip's own switches (--no-setuptools, --no-wheel: do not add those packages) mean nothing to pip itself.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args]))
