"""Entry point of `npm run fixtures`: regenerates test/fixtures/tiny-clip-* (python3 + numpy only)."""
import os

from fixtures.make_tiny_clip import main

if __name__ == "__main__":
    main(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
