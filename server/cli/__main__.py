"""`python -m tilltap.cli`: the same as the `tilltap` command."""
import sys

from tilltap.cli import main

sys.exit(main())
