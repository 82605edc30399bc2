"""The bundled example queue and jobs, and ``python -m fsm_pilot.demo`` which runs them."""
