/* placeholder until the node engine lands */
int node_engine_placeholder(void);
int
node_engine_placeholder(void)
{
    return 0;
}
