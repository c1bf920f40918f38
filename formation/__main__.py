from formation.cli import main

main()
