from edgezoo.cli.main import main

main()
