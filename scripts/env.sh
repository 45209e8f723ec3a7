# Sourced by the scripts: quiet TensorFlow, no telemetry, the project's venv first.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
export PATH="$PWD/.venv/bin:$PATH"
export HELPLINE_ACTION_URL=${HELPLINE_ACTION_URL:-http://127.0.0.1:${HELPLINE_ACTION_PORT:-5055}/webhook}
