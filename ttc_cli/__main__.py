from ttc_cli.cli import main

main()
