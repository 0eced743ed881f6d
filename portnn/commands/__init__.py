"""One module per sub-command (listed in ``portnn.cli.COMMANDS``), plus the helpers they share: ``paths`` (output
and input paths checked before any work), ``options`` (argparse types for numbers) and ``duration`` (times)."""
