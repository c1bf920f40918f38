from formation.launcher import main

main()
