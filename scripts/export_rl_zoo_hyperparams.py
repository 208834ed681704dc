"""Write agents/configs/rl_zoo/ppo_lstm_ncp_{ltc,cfc}.yml from agents/configs/ppo.json (see agents/ppo/rl_zoo.py).

python scripts/export_rl_zoo_hyperparams.py
"""

from ncp_control.agents.ppo.rl_zoo import hyperparams_path, render_hyperparams_file

if __name__ == "__main__":
    for cell in ("ltc", "cfc"):
        path = hyperparams_path(cell)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_hyperparams_file(cell))
        print(path)
