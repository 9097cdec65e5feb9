"""The text of the error an argument check raises, for tests that compare messages exactly."""


def error_text(call):
    """``'TypeName: message'`` of the ``TypeError`` or ``ValueError`` that ``call()`` raises."""
    try:
        call()
    except (TypeError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError("expected a TypeError or ValueError")
