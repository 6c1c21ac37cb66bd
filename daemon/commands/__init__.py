"""One module per `voicepi` subcommand: ``add_arguments(parser)`` and ``run(args) -> int``."""
