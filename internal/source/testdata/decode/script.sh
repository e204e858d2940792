#!/bin/bash
export DB_PASSWORD=hunter2-SECRET-4f9a
systemctl start app
