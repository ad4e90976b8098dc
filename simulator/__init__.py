"""DC-Monitor mesh simulator: a development and test tool, never shipped to users.

It models the firmware on its own (it does not import the integration), so tests that
drive the integration through it are not tautological. Firmware decisions where the
protocol documents are silent are listed in `simulator.mesh`'s docstring.

Build a mesh (`simulator.mesh`)::

    from simulator.mesh import Latencies, Mesh, Profile, Role, build_mesh
    from simulator.physics import Load

    mesh = build_mesh(5, 1, profile=Profile.V1, latencies=Latencies.fast(), seed=1)
    mesh = build_mesh(30, 2)                 # v1: node ids 0..99, group answers staggered
    mesh = build_mesh(9, 1, large_mesh=False)  # v1 before protocol section 10: ids 0..9
    # or node by node: addresses from 0x0005 in order, node id = address - 5
    mesh = Mesh(latencies=Latencies.realistic(), seed=1, profile=Profile.V07)
    mesh.add_node()                          # universal: sensor + load + GATT
    mesh.add_node(Role.RELAY)                # relay only: no sensor, no GATT
    mesh.add_node(profile=Profile.V1, load=Load(supply_voltage=24.0))
    mesh.set_links([(0, 1), (1, 2)])         # who hears whom (default: everyone)
    mesh.node(0).mac, mesh.node(0).duty      # BLE address, current duty
    mesh.node(0).monitor                     # what its MONITOR polls (None: off)
    mesh.radio_log                           # (source, destination, payload) sends
    session = await mesh.connect(mac)        # a raw GATT session (write/read/subscribe)
    ...
    mesh.shutdown()                          # cancel every pending timer

Latencies (seconds) are parameters: `Latencies.fast()` (ms-scale, tests),
`Latencies.realistic()` (connect 0.3-1.5 s, hop 50-300 ms, supervision 4 s, mesh
client timeout 5 s, group answers node id x 100 ms apart), or
`dataclasses.replace(Latencies.fast(), client_timeout=0.3)`.

Faults (node ids are mesh node ids)::

    mesh.power_off(n) / mesh.power_on(n) / mesh.power_cycle(n, off_seconds)
    mesh.refuse_connections(n, count=-1)      # -1: all, 0: stop refusing
    mesh.slow_connections(n, extra_seconds)
    mesh.set_chunk_faults(n, ChunkFaults(drop=0.1, duplicate=0.0, corrupt=0.0))
    mesh.inject_chunk_fault(n, "drop" | "duplicate" | "corrupt", count=1)
    mesh.set_unreachable(n, True)             # unicasts to it end in TIMEOUT:0x...
    mesh.set_link(a, b, up=False)             # cut one radio link
    mesh.fail_next_send(n, "MESH_SEND_FAIL" | "MESH_TIMEOUT")
    mesh.set_bound(n, False)                  # ERROR:NOT_READY (v0.7: ON/OFF fallback)
    mesh.set_stale_gatt_cache(n)              # 0xDC02/03 missing until clear_cache()
    mesh.drop_link(n)                         # drop its GATT links now

Face (a), plain bleak (`simulator.bleak_backend`)::

    from simulator.bleak_backend import SimBleakBackend, SimBleakClient, discover

    device, advertisement = discover(mesh)[0]       # BLEDevice, AdvertisementData
    async with BleakClient(device, backend=SimBleakBackend) as client: ...
    # code that calls bleak_retry_connector.establish_connection:
    monkeypatch.setattr(bleak_retry_connector, "BleakClientWithServiceCache", SimBleakClient)
    # errors: TimeoutError (no answer), BleakError (refused, link lost),
    # BleakGATTProtocolError 0x0D (command over 64 bytes); the disconnected callback
    # fires on every disconnect, solicited or not, as real backends do.

Face (b), Home Assistant (`simulator.ha`)::

    unregister = simulator.ha.async_register_mesh(
        hass, mesh, source="dc_mesh_sim", interval=timedelta(seconds=10)
    )   # each mesh its own proxy: source (default dc_mesh_sim, _2, ...), adapter, slots
    device = bluetooth.async_ble_device_from_address(hass, mac, connectable=True)
    ...
    unregister()    # scanner, timers and the mesh's own timers
"""
