import sys

from mmrace.cli import main

sys.exit(main())
