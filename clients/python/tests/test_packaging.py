"""The package as users get it: installed by pip (SLUICE_VENV_PYTHON, set by
python_test.go, is a fresh venv's interpreter with the package installed),
and the testing fixture that starts a real sluice binary (SLUICE_BIN)."""

import os
import subprocess
import sys
import unittest

BIN = os.environ.get("SLUICE_BIN", "")
VENV_PYTHON = os.environ.get("SLUICE_VENV_PYTHON", "")


@unittest.skipUnless(VENV_PYTHON, "SLUICE_VENV_PYTHON is not set (run through python_test.go)")
class InstalledTest(unittest.TestCase):
    def test_pip_installed_package_registers_the_scheme(self):
        code = (
            "import sluice_ratelimit, limits.storage as s, limits.strategies as st;"
            "print(sluice_ratelimit.__file__);"
            "print(type(s.storage_from_string('sluice://127.0.0.1:1')).__name__, 'gcra' in st.STRATEGIES)"
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        out = subprocess.run([VENV_PYTHON, "-c", code], capture_output=True, text=True, cwd="/", env=env, check=True).stdout.split("\n")
        self.assertIn("site-packages", out[0])
        self.assertEqual(out[1], "SluiceStorage True")


@unittest.skipUnless(BIN, "SLUICE_BIN is not set (run through python_test.go)")
class FixtureTest(unittest.TestCase):
    def test_sluice_server(self):
        from limits import parse
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        import sluice_ratelimit  # noqa: F401
        from sluice_ratelimit.testing import SluiceServer

        with SluiceServer() as server:
            server.freeze(1893456000)
            storage = storage_from_string(server.url)  # limiters hold their storage weakly
            limiter = MovingWindowRateLimiter(storage)
            item = parse("2/minute")
            self.assertEqual([limiter.hit(item, "k") for _ in range(3)], [True, True, False])
            self.assertEqual(limiter.get_window_stats(item, "k")[1], 0)
            server.flush()
            self.assertTrue(limiter.hit(item, "k"))
        self.assertIsNotNone(server._proc.poll(), "stopped")
        with self.assertRaises(FileNotFoundError):
            _without_binary()


def _without_binary():
    from sluice_ratelimit.testing import SluiceServer

    saved = os.environ.pop("SLUICE_BIN")
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = ""
    try:
        SluiceServer()
    finally:
        os.environ["SLUICE_BIN"] = saved
        os.environ["PATH"] = path


if __name__ == "__main__":
    unittest.main(argv=sys.argv)
