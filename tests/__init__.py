"""The test suite: mirrors service/; kinds of tests are markers."""
