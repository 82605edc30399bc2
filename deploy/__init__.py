"""Building and launching the deployable pilot (dist/pilot3.tar.gz); scripts, not part of the wheel."""
