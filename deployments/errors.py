"""What a build reports when the tenant's program cannot be built."""


class BuildFailed(Exception):
    """The tenant's code cannot be built; the message tells the tenant what to fix."""

    def __init__(self, message: str, log: str = "", diagnostics: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.log = log
        # Where the problems are, for the editor: [{"file", "line", "column", "message"}].
        self.diagnostics = diagnostics or []
