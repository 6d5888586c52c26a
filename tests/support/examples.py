"""How many examples a property test draws: all of them in the suite, a tenth in a mutation run."""

import os


def examples(count: int) -> int:
    """`count`, or a tenth of it (at least 2) when `./dev mutation` runs the tests.

    A mutation run runs every test covering a mutated function once per mutant, and these
    property tests cover nearly all of the engine: at full size they are two thirds of the time
    of each surviving mutant. They still run, drawing fewer examples; the suite draws all.
    """
    if os.environ.get("ENGINE_MUTATION_RUN"):
        return max(2, count // 10)
    return count
