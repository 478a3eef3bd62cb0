/* placeholder until libobsync lands */
int obsync_placeholder(void);
int
obsync_placeholder(void)
{
    return 0;
}
