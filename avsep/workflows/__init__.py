"""Orchestrators above the library: jobs that chain data preparation (`data_prep`), training,
evaluation and inference. Only the command line and these modules may import `data_prep`.

    standin  make and prepare the offline stand-in data once (`avsep train --dataset
             synthetic`, `avsep demo`)
    demo     the whole job on the stand-in (`avsep demo`)
"""
