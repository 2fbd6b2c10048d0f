# Entry point of the application bundle: the loader's boot starts main() after the journal is
# settled. It puts the bundle's folder on the import path (the agent and the application live
# beside this file), then runs the update agent with the application's hooks.
import sys


def main():
    from loader import api

    sys.path.insert(0, api.app_dir())
    import application

    from agent.runner import Agent

    application.start()
    Agent(application).run()
