"""What every evaluator has, beside `run`: the tasks it measures, its settings' defaults and
their check, and whether it has anything to say about a kind."""

from gpj.configs import evals


class Evaluator:
    """An evaluator: built once per run kind as `Evaluator(kind, settings, shapes, mesh)`, its
    `settings` being its `config.evals` entry completed from `defaults`."""

    tasks: tuple = ()  # the `gpj.tasks` classes it measures
    defaults = staticmethod(evals.no_settings)  # its settings' defaults (`gpj.configs.evals`)

    @staticmethod
    def check(settings, where: str) -> None:
        """Cheap checks of `settings` (at `where`, e.g. "evals.attack.") before any data is read;
        a ConfigError names the field."""
        del settings, where

    @staticmethod
    def applies(kind) -> bool:
        """Whether it measures `kind` (e.g. the channel scores skip PermuteNet)."""
        del kind
        return True
