"""The web app: `python app.py [--host 127.0.0.1] [--port 7860]` (same as `qa serve`).

Builds the index first when it is missing or stale. Optional login: QA_AUTH="user:password".
"""

import sys

from qa.webapp import main

if __name__ == "__main__":
    sys.exit(main())
