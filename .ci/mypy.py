"""Run mypy over every package's src/ with each src/ directory on the module path."""

import glob
import os
import subprocess
import sys

roots = [*sorted(glob.glob("packages/*/src")), "bench"]
env = {**os.environ, "MYPYPATH": os.pathsep.join(roots)}
sys.exit(subprocess.call([sys.executable, "-m", "mypy", *sys.argv[1:]], env=env))
