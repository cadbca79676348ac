"""Shared pytest set-up for mmtask's tests."""

import os
import tempfile

# Frozen encoders' cached features go to a folder of this test session, not the user's cache.
os.environ.setdefault("MMTASK_CACHE_DIR", tempfile.mkdtemp(prefix="mmtask-test-cache-"))


def pytest_collection_modifyitems(config, items):
    # tf.test.TestCase carries a deprecated `test_session` context manager that
    # pytest would collect and report as skipped; it is not a test.
    items[:] = [item for item in items if item.name != "test_session"]
