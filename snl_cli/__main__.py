from snl_cli.cli import main

main()
