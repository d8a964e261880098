"""One module per DVC stage, run as `python -m stages.<name>`; each `main()` only reads and writes."""
