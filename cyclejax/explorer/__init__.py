"""The web explorer of a workdir's generators (python -m cyclejax.explore).

session.py  everything the page shows, with no HTTP (inputs, runs with interventions,
            layer grids, the run's history, the discriminator's Score-CAM)
server.py   the HTTP endpoints, one call into the session each
static/     the page (index.html, app.js, style.css)
"""
