"""The ``kerastrans`` command line: one module per subcommand.

Each subcommand module defines ``add_parser(subparsers)``, which registers its
flags and sets ``func`` to a ``run(args) -> int`` function. The modules are
thin: they parse, call the library and print. Heavy imports (TensorFlow, ODL)
happen inside ``run`` so that ``kerastrans --help`` is instant.
"""
