from mhub.cli import main

main(prog_name="mhub")
