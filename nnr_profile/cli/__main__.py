"""`python -m nnr_profile.cli`."""

from nnr_profile.cli.main import main

main()
