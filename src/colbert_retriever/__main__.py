"""`python -m colbert_retriever` runs the CLI."""

import sys

from colbert_retriever.cli import main

sys.exit(main())
