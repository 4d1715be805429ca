"""The measured testbed's device behaviour (issue #24): what each device of each scheme does
(`roles`), the device process's entry point (`python -m splitsim.analysis.testbed.device`) and Ray actors as
devices (`ray_devices`). The network side — links, shapers, the message format, launching and the
comparison with the simulator — is netsim/testbed; the tier each device holds is learning/tier_model.py.
"""
